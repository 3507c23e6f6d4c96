"""The kanban board of pipelined entities (routes in ``ui.kanban.routes``)."""
