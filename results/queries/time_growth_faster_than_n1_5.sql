-- question: whose evaluation time grows faster than n^1.5 with the context n, in the latest run?
-- Compares the time ratio between the largest and the smallest context of each scheme with
-- (n_max / n_min)^1.5. Both sides are squared (time_ratio^2 > n_ratio^3) so that the query needs
-- no log() or pow(), which SQLite only has when built with its math functions.
-- (perplexity cases that succeeded; time = mean wall seconds over seeds)
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
),
t AS (
  SELECT c.scheme, c.variant, c.context, avg(c.wall_seconds) AS secs
  FROM cases c, latest
  WHERE c.run_id = latest.run_id AND c.task = 'perplexity' AND c.status = 'ok'
    AND c.wall_seconds > 0
  GROUP BY c.scheme, c.variant, c.context
),
span AS (
  SELECT scheme, variant, min(context) AS n_min, max(context) AS n_max
  FROM t
  GROUP BY scheme, variant
  HAVING max(context) > min(context)
)
SELECT s.scheme,
       s.variant,
       s.n_min,
       s.n_max,
       round(lo.secs, 4) AS secs_at_n_min,
       round(hi.secs, 4) AS secs_at_n_max,
       round(hi.secs / lo.secs, 2) AS time_ratio,
       round(s.n_max * 1.0 / s.n_min, 2) AS n_ratio
FROM span s
JOIN t lo ON lo.scheme = s.scheme AND lo.variant = s.variant AND lo.context = s.n_min
JOIN t hi ON hi.scheme = s.scheme AND hi.variant = s.variant AND hi.context = s.n_max
WHERE (hi.secs / lo.secs) * (hi.secs / lo.secs)
      > (s.n_max * 1.0 / s.n_min) * (s.n_max * 1.0 / s.n_min) * (s.n_max * 1.0 / s.n_min)
ORDER BY hi.secs / lo.secs DESC;
