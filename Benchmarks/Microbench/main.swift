import Shared
print("microbench")
