"""The store's one error: a path that is not a store, a store held by another writer, a
part that cannot be trusted, a refused change; each problem one line (exit status 2)."""

from __future__ import annotations

from insitu.errors import InputError


class StoreError(InputError):
    """A store problem a user can act on; ``problems`` holds one line each."""
