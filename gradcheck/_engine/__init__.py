"""The checker's engine: private. The public checkers in :mod:`gradcheck.check`, :mod:`gradcheck.jacobian` and
:mod:`gradcheck.network_check` are its only callers; nothing here is part of the API."""
