"""Providers litellm does not have, registered as litellm custom providers."""
