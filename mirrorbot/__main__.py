from mirrorbot.cli import main

main()
