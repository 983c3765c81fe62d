-- Every stored comparison maintained two indexes led by route_id: (route_id, recorded_at) from
-- 0001 and the covering (route_id, outcome, recorded_at, ...) from 0003. Queries by route and
-- time name the outcomes (or take the earliest per outcome), so the covering one serves them
-- all, and each comparison costs one index insert less (about a microsecond per shadowed request).
DROP INDEX IF EXISTS comparisons_by_route_time;
