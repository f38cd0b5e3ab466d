"""The built-in toxicity scorers, one module each.

Every module of this package is imported when :data:`compfair.scoring.SCORERS`
is first read, and registers its scorer with
:func:`compfair.scoring.register_scorer`: adding a scorer is adding a module
here. A module imports its heavy dependencies (torch, transformers,
scikit-learn, h5py, the scorer's own package) inside its functions, so that
listing the scorers stays fast.
"""
