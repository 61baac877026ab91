"""Backends turn an edgec integer graph into a deployable artifact (installed as ``edgec.backends``).

Each backend is one package here and is registered in one explicit table; none ships yet.
"""
