"""The command line: the composition root and the only package that imports typer.

cli parses arguments, wires the real store, clock and files into the core, prints results
and maps tieout's errors to the contract's exit codes in one place (cli.main).
"""
