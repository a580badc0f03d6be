-- question: how often does each scheme retrieve the passkey, at each length and each depth, in the
-- latest run? Passkey results are curves named 'passkey:depth=D' (D = where the key sits, 0 = start
-- of the text, 1 = end) with x = length in bytes and y = exact-match accuracy (0..1); accuracy is
-- the mean over seeds, ctx_ratio the length over the training length.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT c.scheme,
       c.variant,
       c.train_ctx,
       CAST(cu.x AS INTEGER) AS length,
       round(cu.x / c.train_ctx, 2) AS ctx_ratio,
       CAST(substr(cu.name, instr(cu.name, 'depth=') + 6) AS REAL) AS depth,
       round(avg(cu.y), 3) AS accuracy,
       count(DISTINCT c.seed) AS seeds
FROM curves cu
JOIN cases c ON c.id = cu.case_id
JOIN latest ON c.run_id = latest.run_id
WHERE cu.name LIKE 'passkey:depth=%'
GROUP BY c.scheme, c.variant, c.train_ctx, cu.x, depth
ORDER BY c.scheme, c.variant, length, depth;
