"""A small Korean customer-support app, tested by the `app` suite through `python:` targets."""
