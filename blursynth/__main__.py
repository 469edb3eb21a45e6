from blursynth.cli import main

main(prog_name="blursynth")
