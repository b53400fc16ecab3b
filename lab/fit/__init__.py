"""Fitting a scenario to a transaction log (`lab fit`, docs/FIT.md).

The pipeline runs one way: read and summarise the log (:mod:`lab.fit.data`), fit the
buy-till-you-die models by maximum likelihood (:mod:`lab.fit.likelihoods`, :mod:`lab.fit.estimate`),
predict from them (:mod:`lab.fit.predict`, :mod:`lab.fit.simulate`), check them against the holdout
(:mod:`lab.fit.holdout`), all tied together as plain data by :mod:`lab.fit.pipeline`; then write the
fitted scenario, fit.json and the report (:mod:`lab.fit.scenario_writer`, :mod:`lab.fit.report`).
:mod:`lab.fit.command` is the command line.
"""
