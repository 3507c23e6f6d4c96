"""Pool work on the screens: claim, return, recycle, move, lock buttons and the
mine / pool / team tabs of pooled entities' lists (routes in ``ui.pools.routes``)."""
