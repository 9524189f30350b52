"""Development tooling: the local stack (moto, the stream, child processes), the traffic simulator and
`make demo`. Never shipped: the image copies only the product packages, and no product package imports
this one (import-linter's layers in pyproject.toml, checked by `make lint`)."""
