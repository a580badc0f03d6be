-- question: for the latest run, per scheme and evaluation length: bits per byte on non-overlapping
-- windows and on sliding windows (stride n/2), each the mean over the seeds with its 95% interval
-- half-width (Student-t across seeds; NULL with one seed), and the passkey accuracy averaged over
-- depths and seeds. One row per scheme (with its eval-time variant) and length.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
),
g AS (
  SELECT s.* FROM v_seed_groups s JOIN latest ON s.run_id = latest.run_id
)
SELECT p.scheme || CASE WHEN p.variant <> '' THEN '+' || p.variant ELSE '' END AS encoding,
       p.context,
       round(p.ctx_ratio, 2) AS x_train,
       p.seeds,
       round(p.mean, 3) AS bpb,
       round((p.hi - p.lo) / 2, 3) AS bpb_pm,
       round(sl.mean, 3) AS bpb_sliding,
       round((sl.hi - sl.lo) / 2, 3) AS sliding_pm,
       round(pk.mean, 3) AS passkey_acc
FROM g p
LEFT JOIN g sl ON sl.scheme = p.scheme AND sl.variant = p.variant AND sl.context = p.context
 AND sl.task = 'perplexity' AND sl.name = 'bpb' AND sl.mode = 'sliding' AND sl.stride * 2 = sl.context
LEFT JOIN g pk ON pk.scheme = p.scheme AND pk.variant = p.variant AND pk.context = p.context
 AND pk.task = 'passkey' AND pk.name = 'passkey_acc'
WHERE p.task = 'perplexity' AND p.name = 'bpb' AND p.mode = 'nonoverlap'
ORDER BY p.scheme, p.variant, p.context;
