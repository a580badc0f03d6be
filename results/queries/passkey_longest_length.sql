-- question: what is the longest length at which each scheme retrieves the passkey at least 80% of
-- the time at every depth, in the latest run? (NULL: at no length.)
-- Accuracy per (length, depth) is averaged over seeds first; a length counts when its worst depth
-- reaches 0.8.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
),
cell AS (
  SELECT c.scheme, c.variant, cu.name AS depth, CAST(cu.x AS INTEGER) AS length, avg(cu.y) AS accuracy
  FROM curves cu
  JOIN cases c ON c.id = cu.case_id
  JOIN latest ON c.run_id = latest.run_id
  WHERE cu.name LIKE 'passkey:depth=%'
  GROUP BY c.scheme, c.variant, cu.name, cu.x
),
worst AS (
  SELECT scheme, variant, length, min(accuracy) AS worst_depth_accuracy
  FROM cell GROUP BY scheme, variant, length
)
SELECT scheme, variant,
       max(CASE WHEN worst_depth_accuracy >= 0.8 THEN length END) AS longest_length_at_80,
       max(length) AS longest_length_tried
FROM worst
GROUP BY scheme, variant
ORDER BY longest_length_at_80 DESC, scheme, variant;
