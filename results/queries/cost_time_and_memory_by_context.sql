-- question: how long does one evaluation forward pass take, and how much memory does it need, per scheme and context, in the latest run?
-- (task 'cost'; eval_s is the median of the timed repetitions and eval_min_s / eval_max_s their
-- min and max (the metric's lo and hi); train_step_s the same for one training step at batch 1,
-- NULL past [cost] train_limit; eval_peak_mib is the child's peak RSS after the forward timings,
-- case_peak_mib its peak over the whole case, training step included; mean over seeds)
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT v.scheme,
       v.variant,
       v.context,
       round(avg(e.value), 6) AS eval_s,
       round(min(e.lo), 6) AS eval_min_s,
       round(max(e.hi), 6) AS eval_max_s,
       round(avg(k.value)) AS eval_tokens_per_s,
       round(avg(g.value), 2) AS eval_gflops,
       round(avg(t.value), 6) AS train_step_s,
       round(avg(p.value) / 1048576.0, 1) AS eval_peak_mib,
       round(avg(v.peak_rss) / 1048576.0, 1) AS case_peak_mib,
       count(*) AS seeds
FROM v_cases v
JOIN latest ON v.run_id = latest.run_id
JOIN metrics e ON e.case_id = v.case_id AND e.name = 'eval_seconds'
LEFT JOIN metrics k ON k.case_id = v.case_id AND k.name = 'eval_tokens_per_s'
LEFT JOIN metrics g ON g.case_id = v.case_id AND g.name = 'eval_gflops'
LEFT JOIN metrics t ON t.case_id = v.case_id AND t.name = 'train_step_seconds'
LEFT JOIN metrics p ON p.case_id = v.case_id AND p.name = 'eval_peak_rss'
WHERE v.task = 'cost' AND v.status = 'ok'
GROUP BY v.scheme, v.variant, v.context
ORDER BY v.scheme, v.variant, v.context;
