#version 330 core
// A triangle mesh in world units, seen through an EG3D camera (OpenCV axes: x right, y down,
// z forward). u_world_to_cam is the inverse cam2world; u_projection maps OpenCV camera space to
// clip space with the camera's normalised intrinsics, so the mesh lands where the render's pixels
// are. Normals and positions go to the fragment shader in OpenCV camera space.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;
layout(location = 2) in vec3 a_colour;   // 0..1 (from uint8)

uniform mat4 u_world_to_cam;
uniform mat4 u_projection;

out vec3 v_position;   // camera space
out vec3 v_normal;     // camera space
out vec3 v_colour;

void main() {
    vec4 p = u_world_to_cam * vec4(a_position, 1.0);
    v_position = p.xyz;
    v_normal = mat3(u_world_to_cam) * a_normal;
    v_colour = a_colour;
    gl_Position = u_projection * p;
}
