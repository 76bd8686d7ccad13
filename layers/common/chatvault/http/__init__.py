"""The HTTP edge: the resolver every function uses, and the one error-mapping module."""
