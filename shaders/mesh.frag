#version 330 core
// Lit mesh: u_mode 0 = vertex colours, 1 = normals (camera space, coloured as the normals view:
// OpenGL view axes mapped to n * 0.5 + 0.5), 2 = plain clay. A head light at the camera plus a key
// light from the upper left; lighting is two-sided, so open surfaces show their inside.
in vec3 v_position;
in vec3 v_normal;
in vec3 v_colour;

uniform int u_mode;

out vec4 frag_color;

void main() {
    vec3 n = normalize(v_normal);
    vec3 to_eye = normalize(-v_position);
    if (dot(n, to_eye) < 0.0) n = -n;
    if (u_mode == 1) {
        vec3 g = vec3(n.x, -n.y, -n.z);  // OpenCV -> OpenGL view axes
        frag_color = vec4(g * 0.5 + 0.5, 1.0);
        return;
    }
    vec3 albedo = u_mode == 0 ? v_colour : vec3(0.72, 0.70, 0.66);
    vec3 key = normalize(vec3(-0.5, -0.7, -0.5));  // towards the light: left, up, towards the camera
    float head = max(dot(n, to_eye), 0.0);
    float diffuse = 0.55 * head + 0.35 * max(dot(n, key), 0.0);
    vec3 h = normalize(key + to_eye);
    float spec = u_mode == 0 ? 0.0 : 0.15 * pow(max(dot(n, h), 0.0), 32.0);
    vec3 c = albedo * (0.25 + diffuse) + spec;
    frag_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
