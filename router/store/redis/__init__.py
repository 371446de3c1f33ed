"""The Redis store, shared by several replicas (store.py); its scripts are in ../lua."""

from router.store.redis.store import RedisStore, lua_source

__all__ = ["RedisStore", "lua_source"]
