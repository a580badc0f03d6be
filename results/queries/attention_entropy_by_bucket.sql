-- question: how diffuse is each scheme's attention at each position of the window, layer by layer,
-- at the largest context it was evaluated at in the latest run? Curves 'attention_entropy:layer=l'
-- of the perplexity cases hold, per position bucket [0, L), [L, 2L), [2L, 4L), ... (x = bucket
-- start), the mean entropy in nats of the queries' attention (over heads, the bucket's queries and
-- up to 8 evenly spaced windows); mean over seeds here. Uniform attention over k keys has entropy
-- ln k, so entropy that keeps growing like ln(position) past L means attention spreading thin.
WITH latest AS (
  SELECT coalesce((SELECT max(id) FROM runs WHERE status = 'complete'),
                  (SELECT max(id) FROM runs)) AS run_id
),
e AS (
  SELECT c.scheme, c.variant, c.train_ctx, c.context, c.seed,
         CAST(substr(cu.name, instr(cu.name, 'layer=') + 6) AS INTEGER) AS layer,
         CAST(cu.x AS INTEGER) AS bucket_start, cu.y AS nats
  FROM curves cu
  JOIN cases c ON c.id = cu.case_id
  JOIN latest ON c.run_id = latest.run_id
  WHERE cu.name LIKE 'attention_entropy:layer=%' AND c.task = 'perplexity' AND c.status = 'ok'
)
SELECT scheme,
       variant,
       train_ctx,
       context,
       layer,
       bucket_start,
       round(bucket_start * 1.0 / train_ctx, 2) AS bucket_ratio,
       round(avg(nats), 3) AS entropy_nats,
       count(DISTINCT seed) AS seeds
FROM e
WHERE context = (SELECT max(x.context) FROM e x WHERE x.scheme = e.scheme AND x.variant = e.variant)
GROUP BY scheme, variant, train_ctx, context, layer, bucket_start
ORDER BY scheme, variant, layer, bucket_start;
