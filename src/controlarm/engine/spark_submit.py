"""Entry script for ``spark-submit``: runs the ``controlarm`` command inside the submitted driver.

On a cluster, the study file names the session's own tables, ``[data] source =
"spark://session?database=clif"``, and::

    spark-submit --master yarn --deploy-mode client \\
        "$(python -c 'import controlarm.engine.spark_submit as m; print(m.__file__)')" \\
        run study.toml --out report/

controlarm's SQL is plain Spark SQL (no Python UDFs), so only the driver needs controlarm
installed; executors run the SQL. The session spark-submit configured is used as it is, and is not
stopped by controlarm.
"""

from __future__ import annotations

if __name__ == "__main__":  # pragma: no cover - run by spark-submit
    from controlarm.cli import main

    main()
