"""Predictive models of the profile service: CLV, churn risk and purchase propensity,
send-time optimisation, recommendations and subject-line choice.

Every model is plain domain code on numpy arrays and frozen dataclasses, with no database
and no server: the profile service's store extracts the inputs (transaction summaries,
event logs, engagement timestamps, co-view and co-purchase lists) and writes the scores
back as computed traits. `scorers` wraps the models behind one `Scorer` protocol, which is
what a plugin registers; `cli` is `mailwright predict`.

Submodules are imported on use (scikit-learn is only loaded by the classifiers).
"""
