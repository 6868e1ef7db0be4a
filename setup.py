# cffi's cffi_modules has no pyproject.toml equivalent (python-cffi/cffi#55); all other
# metadata lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["dataplane/build.py:ffibuilder"])
