-- question: which scheme has the lowest bits per byte at 8x its training length, in the latest run?
-- (mean over seeds, best first; schemes that cannot serve 8x the training length are left out)
SELECT scheme,
       variant,
       train_ctx,
       context,
       round(avg(bpb), 4) AS bpb,
       round(avg(bpb_ratio), 4) AS bpb_ratio,
       count(bpb) AS seeds
FROM v_latest_bpb
WHERE context = 8 * train_ctx
  AND bpb IS NOT NULL
GROUP BY scheme, variant, train_ctx, context
ORDER BY avg(bpb);
