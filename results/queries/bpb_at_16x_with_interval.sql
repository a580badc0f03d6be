-- question: what are the bits per byte at 16x the training length for each scheme in the latest
-- run, with a 95% interval? With several seeds: the mean over the seeds and its Student-t interval
-- (view v_seed_groups); with one seed: that seed's bootstrap interval over the evaluation windows
-- (lo/hi of its bpb metric). One row per encoding and evaluation mode (nonoverlap, or sliding with
-- its stride); an encoding evaluated at 16x without a successful case shows its status and NULLs.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
),
tried AS (
  SELECT c.run_id, c.scheme, c.variant, c.train_ctx, c.context,
         group_concat(DISTINCT c.status) AS statuses
  FROM cases c
  JOIN latest ON c.run_id = latest.run_id
  WHERE c.task = 'perplexity' AND c.context = 16 * c.train_ctx
  GROUP BY c.scheme, c.variant, c.train_ctx
)
SELECT t.scheme,
       t.variant,
       t.train_ctx,
       t.context,
       g.mode,
       g.stride,
       g.seeds,
       round(g.mean, 4) AS bpb,
       round(CASE WHEN g.seeds > 1 THEN g.lo ELSE m.lo END, 4) AS bpb_lo,
       round(CASE WHEN g.seeds > 1 THEN g.hi ELSE m.hi END, 4) AS bpb_hi,
       CASE WHEN g.seeds > 1 THEN 'across seeds'
            WHEN g.seeds = 1 THEN 'bootstrap over windows' END AS interval,
       t.statuses AS status
FROM tried t
LEFT JOIN v_seed_groups g
  ON g.run_id = t.run_id AND g.scheme = t.scheme AND g.variant = t.variant
 AND g.task = 'perplexity' AND g.context = t.context AND g.name = 'bpb'
LEFT JOIN metrics m
  ON g.seeds = 1
 AND m.id = (SELECT min(m1.id) FROM metrics m1 JOIN cases c1 ON c1.id = m1.case_id
             WHERE c1.run_id = t.run_id AND c1.scheme = t.scheme AND c1.variant = t.variant
               AND c1.task = 'perplexity' AND c1.context = t.context AND c1.status = 'ok'
               AND m1.name = 'bpb' AND m1.mode IS g.mode AND m1.stride IS g.stride)
ORDER BY g.mean IS NULL, g.mode, g.mean, t.scheme, t.variant;
