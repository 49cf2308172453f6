# CMake generated Testfile for 
# Source directory: /work/main/plugin
# Build directory: /work/main/build/plugin
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
