-- The lake's permissions as last checked (at a run's start, or by `cdr-audit permissions --apply`): per zone, who may read it (owner alone, or a group), the declared modes, entries checked and looser than declared, and whether the run went on regardless (allowed_open).
-- docs/design.md §2: owner zones 0700 / 0600, group zones 2750 / 0640 with the role's Unix group, the lake root
-- 0711; `work` is the run's work folders. An entry is open when an owner zone's has any group or other bit, a group
-- zone's any other bit.
WITH last AS (SELECT run_id, checked_at FROM zone_permissions ORDER BY checked_at DESC, run_id DESC LIMIT 1)
SELECT z.run_id, z.checked_at, z.zone, z.access, z.group_role, z.unix_group, z.group_on_host,
       z.dir_mode, z.file_mode, z.entries_checked, z.entries_open, z.entries_other_group, z.allowed_open,
       z.entries_open = 0 AS as_declared, z.clause
FROM zone_permissions z JOIN last USING (run_id)
ORDER BY z.zone = 'work', z.zone <> 'lake_root', z.access DESC, z.zone
