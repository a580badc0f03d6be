-- question: how often does each scheme retrieve the passkey at each depth, at a length of 4K
-- (4096 bytes), in the latest run?
-- Passkey results are curves named 'passkey:depth=D' (D = where the key sits, 0 = start,
-- 1 = end), with x = length in bytes and y = exact-match accuracy (0..1); mean over seeds.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT c.scheme,
       c.variant,
       CAST(substr(cu.name, instr(cu.name, 'depth=') + 6) AS REAL) AS depth,
       CAST(cu.x AS INTEGER) AS length,
       round(avg(cu.y), 3) AS accuracy,
       count(DISTINCT c.seed) AS seeds
FROM curves cu
JOIN cases c ON c.id = cu.case_id
JOIN latest ON c.run_id = latest.run_id
WHERE cu.name LIKE 'passkey%depth=%'
  AND cu.x = 4096
GROUP BY c.scheme, c.variant, depth, cu.x
ORDER BY c.scheme, c.variant, depth;
