# cdr-audit on Airflow 3.3 (Python 3.11): the same pinned versions the tests ran with (Celery and Postgres included).
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/cdr-audit
COPY --chown=airflow:root requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY --chown=airflow:root pyproject.toml README.md ./
COPY --chown=airflow:root transforms/ transforms/
COPY --chown=airflow:root sample_data/ sample_data/
COPY --chown=airflow:root policy/ policy/
COPY --chown=airflow:root expectations/ expectations/
COPY --chown=airflow:root reference/ reference/
COPY --chown=airflow:root dags/ dags/
# Editable, so the engine finds the files bundled beside it (policy/, expectations/, reference/:
# transforms/bundled.py) in /opt/cdr-audit, as in a checkout.
RUN pip install --no-cache-dir --no-deps -e .

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/cdr-audit/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    CDR_AUDIT_POLICY=/opt/cdr-audit/policy/a1_slovenia.yaml \
    CDR_AUDIT_LAKE=/lake \
    CDR_AUDIT_LANDING=/landing/{night}
