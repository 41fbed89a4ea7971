"""The book's experiments and the ``gradcheck`` command that runs them. An application of the library: nothing in
the library imports it."""

__all__: list[str] = []
