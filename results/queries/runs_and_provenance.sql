-- question: which runs are stored, and with what code, machine, build, suite and corpus were they
-- made? (newest first; hashes shortened to 12 characters)
SELECT r.id,
       r.suite_name AS suite,
       r.status,
       r.started_at,
       r.finished_at,
       r.git_rev,
       r.version,
       r.host,
       r.cpu,
       r.threads,
       r.compiler,
       r.cflags,
       r.blas,
       substr(r.suite_sha256, 1, 12) AS suite_sha256,
       (SELECT group_concat(DISTINCT substr(m.corpus_sha256, 1, 12)) FROM models m
        WHERE m.id IN (SELECT model_id FROM cases c WHERE c.run_id = r.id)) AS corpus_sha256,
       (SELECT count(*) FROM cases c WHERE c.run_id = r.id AND c.status = 'ok') || '/' ||
       (SELECT count(*) FROM cases c WHERE c.run_id = r.id) AS cases_ok
FROM runs r
ORDER BY r.id DESC;
