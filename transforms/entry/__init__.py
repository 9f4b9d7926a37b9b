"""How people and schedulers start the work: the `cdr-audit` command line (`cli`, `commands`) and the
functions Airflow's tasks call (`tasks`). Nothing here decides a rule; it resolves inputs and calls the
stages."""
