"""The viewer's graphics: the GLFW window, GL helpers, the presenter (frame -> texture, CUDA-GL interop or CPU
upload) and the mesh view. Everything here runs on the UI thread with the window's context current."""
