from edgesdk.cli import console_main

console_main()
