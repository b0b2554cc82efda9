"""The only modules that touch private APIs of karyobench's dependencies.

* :mod:`karyobench.compat.sklearn` - scikit-learn's parameter-constraint machinery
  (``sklearn.utils._param_validation``, ``BaseEstimator._validate_params``);
* :mod:`karyobench.compat.scikeras` - scikeras 0.13 under current scikit-learn
  (``__sklearn_tags__``) and the wrapper state a custom fit loop needs;
* :mod:`karyobench.compat.optuna` - the storage and trial id behind an ask/tell trial;
* :mod:`karyobench.compat.keras` - Adam's moment slots (for the fused Adam kernel).

Everything else imports the functions here, so an upgrade of a dependency that moves a
private name breaks (and is fixed in) one file. Importing this package imports none of
them: each submodule imports only its own dependency (``compat.scikeras`` TensorFlow).
"""
