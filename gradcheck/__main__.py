import sys

from gradcheck.book.cli import main

__all__: list[str] = []

sys.exit(main())
