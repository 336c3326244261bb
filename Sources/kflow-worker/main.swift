import Shared
print("kflow-worker")
