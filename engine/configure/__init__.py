"""The admin's no-code configuration: typed changes to the metadata, previewed as a
migration plan and applied live (see ``service``; docs/admin.md)."""
