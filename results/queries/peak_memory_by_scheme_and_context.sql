-- question: how much memory did evaluating each scheme take at each context, in the latest run?
-- (peak RSS of the case's child process, measured by the kernel, next to the analytic bytes of
-- activations and positional-encoding state; mean over seeds)
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT v.scheme,
       v.variant,
       v.task,
       v.context,
       round(avg(v.peak_rss) / 1048576.0, 1) AS peak_mib,
       round(max(v.peak_rss) / 1048576.0, 1) AS max_peak_mib,
       round(avg(v.act_bytes) / 1048576.0, 2) AS activations_mib,
       round(avg(v.pe_state_bytes) / 1024.0, 1) AS pe_state_kib,
       count(*) AS cases
FROM v_cases v
JOIN latest ON v.run_id = latest.run_id
WHERE v.status = 'ok'
  AND v.peak_rss IS NOT NULL
GROUP BY v.scheme, v.variant, v.task, v.context
ORDER BY v.scheme, v.variant, v.task, v.context;
