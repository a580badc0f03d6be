-- question: how long did each model of the latest run take to train, how fast, with how much memory?
-- (models reused from an earlier run are included: they are the ones the latest run's cases used)
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
)
SELECT m.id AS model_id,
       m.run_id,
       m.scheme,
       m.train_ctx,
       m.seed,
       m.n_params,
       round(m.train_seconds, 1) AS train_s,
       round(m.cpu_seconds, 1) AS cpu_s,
       round(m.bytes_per_second) AS bytes_per_s,
       round(m.peak_rss / 1048576.0, 1) AS peak_mib,
       round(m.final_loss, 4) AS final_loss,
       m.status
FROM models m, latest
WHERE m.run_id = latest.run_id
   OR m.id IN (SELECT model_id FROM cases WHERE run_id = latest.run_id)
ORDER BY m.train_seconds DESC;
