-- Every stored comparison wrote three index entries besides its row. Two of them can go:
--
-- (route_id, recorded_at) from 0001: queries by route and time name the outcomes (or take the
-- earliest per outcome), so the covering (route_id, outcome, recorded_at, ...) index from 0003
-- serves them all.
DROP INDEX IF EXISTS comparisons_by_route_time;

-- (request_id) from 0001 serves one lookup: a request's differences. Only comparisons with
-- differences need it, and on a healthy route that is a small share; the others no longer
-- write an entry.
DROP INDEX IF EXISTS comparisons_by_request;
CREATE INDEX comparisons_with_differences_by_request ON comparisons (request_id) WHERE difference_count > 0;
