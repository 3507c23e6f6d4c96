"""Identity, the org tree and row permissions.

- ``identity``, ``passwords``, ``tokens``: users, Argon2 passwords, login throttling,
  session epochs, hashed API tokens.
- ``org``: departments with materialised paths; "subtree" is one range predicate.
- ``policy_store``: the Casbin model, a Core adapter over ``casbin_rule``, roles synced
  from the registry, role bindings per domain (org | dept:<id> | pool:<name>).
- ``index``: the per-policy-version index and the per-process ``PolicyCache``.
- ``scopes``: ``CasbinAccessPolicy`` (the real ``engine.access.AccessPolicy``) and ``why``;
  ``_owners`` writes department scopes for each planner, ``_branch`` holds a branch.
- ``shares``: one record shared with a user or a department, read or write, expiring.
- ``sharing_rules``, ``conditions``: criteria-based sharing from roles metadata.
- ``bootstrap``: the first administrator and roles synced on init/migrate.
- ``view_as``: administrators, and "view as user" recorded in the activity log.
- ``manage``: administration by login and department code (the ``perms`` CLI).
- ``versions``: the stamps that tell every process to reload.
"""
