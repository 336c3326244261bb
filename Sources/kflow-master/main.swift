import Shared
print("kflow-master")
