-- question: what are the fitted growth exponents of evaluation time, memory and training-step time in the context n, per scheme, in the latest run?
-- (task 'cost_fit': the slope b of the least-squares fit log(cost) = a + b log(n) over the
-- scheme's successful cost cases, so cost ~ n^b: 1 is linear, 2 quadratic. *_lo / *_hi are b's 95%
-- interval (NULL with 2 points), *_points the contexts fitted. time: median forward seconds;
-- memory: the peak RSS the forward added (eval_added_rss); train_time: median training-step
-- seconds, up to [cost] train_limit. A scheme with fewer than 2 successful cost cases has a row
-- with status 'unsupported' and the reason. Fastest-growing time first.)
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT v.scheme,
       v.variant,
       v.seed,
       round(t.value, 3) AS time_exponent,
       round(t.lo, 3) AS time_lo,
       round(t.hi, 3) AS time_hi,
       t.count AS time_points,
       round(m.value, 3) AS memory_exponent,
       m.count AS memory_points,
       round(r.value, 3) AS train_time_exponent,
       r.count AS train_points,
       v.status,
       v.error
FROM v_cases v
JOIN latest ON v.run_id = latest.run_id
LEFT JOIN metrics t ON t.case_id = v.case_id AND t.name = 'time_exponent'
LEFT JOIN metrics m ON m.case_id = v.case_id AND m.name = 'memory_exponent'
LEFT JOIN metrics r ON r.case_id = v.case_id AND r.name = 'train_time_exponent'
WHERE v.task = 'cost_fit'
ORDER BY t.value IS NULL, t.value DESC, v.scheme, v.variant, v.seed;
