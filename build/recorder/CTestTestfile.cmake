# CMake generated Testfile for 
# Source directory: /work/main/recorder
# Build directory: /work/main/build/recorder
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
