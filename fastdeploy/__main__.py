from fastdeploy.cli import main

main()
