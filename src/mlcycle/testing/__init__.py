"""Test helpers shipped with mlcycle, for mlcycle's own tests and for third-party backends.

- :mod:`mlcycle.testing.contract`: the contract suites every backend must pass.
- :mod:`mlcycle.testing.aws`: a sagemaker backend inside ``moto.mock_aws()``; never real AWS.
"""
