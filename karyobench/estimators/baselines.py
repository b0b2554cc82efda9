"""Classical baselines on pixels or HOG; all preprocessing sits inside the pipeline.

HOG features are cached on disk (``memory="auto"``: ``<karyobench cache>/features``), keyed
by pixels and HOG parameters, so folds, estimators and re-runs never recompute them.
"""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from karyobench.estimators.features import HOGFeatures, PixelFlattener


def svm_linear_pixels():
    return Pipeline([("pixels", PixelFlattener()), ("svc", SVC(kernel="linear", C=1.0))])


def svm_rbf_hog():
    return Pipeline([("hog", HOGFeatures(memory="auto")), ("scale", StandardScaler()),
                     ("svc", SVC(kernel="rbf", C=10.0, gamma="scale"))])


def rf_hog():
    return Pipeline([("hog", HOGFeatures(memory="auto")),
                     ("rf", RandomForestClassifier(n_estimators=500, n_jobs=1))])


def rf_pixels():
    return Pipeline([("pixels", PixelFlattener()),
                     ("rf", RandomForestClassifier(n_estimators=500, n_jobs=1))])


def logreg_pixels():
    return Pipeline([("pixels", PixelFlattener()), ("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=0.01, max_iter=2000))])
