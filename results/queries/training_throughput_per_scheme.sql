-- question: how fast does each scheme train, in bytes per second, over every model stored?
-- (one row per scheme, training context and model size; fastest first)
SELECT scheme,
       train_ctx,
       n_params,
       count(*) AS models,
       round(avg(bytes_per_second)) AS bytes_per_s,
       round(min(bytes_per_second)) AS min_bytes_per_s,
       round(max(bytes_per_second)) AS max_bytes_per_s,
       round(avg(train_seconds), 1) AS train_s,
       round(avg(peak_rss) / 1048576.0, 1) AS peak_mib
FROM models
WHERE status = 'ok'
  AND bytes_per_second > 0
GROUP BY scheme, train_ctx, n_params
ORDER BY avg(bytes_per_second) DESC;
