#version 330 core
// Shows the display texture inside an aspect-fitted rectangle, background elsewhere.
// u_mode 0: RGB. 1: depth colour map (16-bit depth in R,G; opacity in B). 2: normals from depth.
// Depth texels are read with texelFetch, never filtered: blending the two bytes would be wrong.

uniform sampler2D u_tex;
uniform int u_mode;
uniform vec4 u_image;        // image rectangle in framebuffer pixels: x, y (bottom-left), w, h
uniform vec3 u_background;
uniform float u_near;        // depth at q = 0
uniform float u_far;         // depth at q = 65535
uniform float u_focal;       // focal length over image size (EG3D's normalised intrinsics)

out vec4 frag_color;

// Viridis through five of its published stops, reversed so that near is bright yellow and far
// dark purple; luma rises monotonically through the stops.
vec3 viridis(float x) {
    const vec3 c0 = vec3(0.267, 0.004, 0.329);  // #440154
    const vec3 c1 = vec3(0.231, 0.322, 0.545);  // #3b528b
    const vec3 c2 = vec3(0.129, 0.569, 0.549);  // #21918c
    const vec3 c3 = vec3(0.369, 0.788, 0.384);  // #5ec962
    const vec3 c4 = vec3(0.992, 0.906, 0.145);  // #fde725
    float s = clamp(x, 0.0, 1.0) * 4.0;
    if (s < 1.0) return mix(c0, c1, s);
    if (s < 2.0) return mix(c1, c2, s - 1.0);
    if (s < 3.0) return mix(c2, c3, s - 2.0);
    return mix(c3, c4, s - 3.0);
}

// q / 65535 in [0, 1] from the two depth bytes (R high, G low).
float depth01(vec4 t) {
    float hi = floor(t.r * 255.0 + 0.5);
    float lo = floor(t.g * 255.0 + 0.5);
    return (hi * 256.0 + lo) / 65535.0;
}

bool opaque(ivec2 p, ivec2 size) {
    if (any(lessThan(p, ivec2(0))) || any(greaterThanEqual(p, size))) return false;
    return texelFetch(u_tex, p, 0).b >= 0.5;
}

// Camera-space point (OpenCV axes: x right, y down, z forward) at depth along the pixel's unit ray.
vec3 position(ivec2 p, ivec2 size) {
    float d = mix(u_near, u_far, depth01(texelFetch(u_tex, p, 0)));
    vec2 uv = (vec2(p) + 0.5) / vec2(size);  // row 0 = top of the image
    vec3 ray = normalize(vec3((uv - 0.5) / u_focal, 1.0));
    return d * ray;
}

// Difference along one axis: central where both neighbours are opaque and alike, else the side
// with the smaller depth jump (keeps silhouettes from bleeding into the normals).
vec3 difference(vec3 c, ivec2 p, ivec2 step, ivec2 size, out bool ok) {
    bool f = opaque(p + step, size), b = opaque(p - step, size);
    ok = f || b;
    vec3 fwd = f ? position(p + step, size) - c : vec3(0.0);
    vec3 bwd = b ? c - position(p - step, size) : vec3(0.0);
    if (f && b) {
        float jf = abs(fwd.z), jb = abs(bwd.z);
        if (max(jf, jb) <= 2.0 * min(jf, jb) + 1e-6) return 0.5 * (fwd + bwd);
        return jf < jb ? fwd : bwd;
    }
    return f ? fwd : bwd;
}

void main() {
    vec2 uv = (gl_FragCoord.xy - u_image.xy) / u_image.zw;
    if (any(lessThan(uv, vec2(0.0))) || any(greaterThanEqual(uv, vec2(1.0)))) {
        frag_color = vec4(u_background, 1.0);
        return;
    }
    uv.y = 1.0 - uv.y;  // tensor row 0 (texture row 0) at the top
    if (u_mode == 0) {
        frag_color = vec4(texture(u_tex, uv).rgb, 1.0);
        return;
    }
    ivec2 size = textureSize(u_tex, 0);
    ivec2 p = clamp(ivec2(floor(uv * vec2(size))), ivec2(0), size - 1);
    vec4 t = texelFetch(u_tex, p, 0);
    if (t.b < 0.5) {
        frag_color = vec4(u_background, 1.0);
        return;
    }
    if (u_mode == 1) {
        frag_color = vec4(viridis(1.0 - depth01(t)), 1.0);
        return;
    }
    vec3 c = position(p, size);
    bool okx, oky;
    vec3 dx = difference(c, p, ivec2(1, 0), size, okx);
    vec3 dy = difference(c, p, ivec2(0, 1), size, oky);
    vec3 n = vec3(0.0, 0.0, -1.0);  // isolated pixel: face the camera
    if (okx && oky) {
        vec3 m = cross(dx, dy);
        if (dot(m, m) > 0.0) n = normalize(m);
    }
    if (dot(n, c) > 0.0) n = -n;               // towards the camera
    n = vec3(n.x, -n.y, -n.z);                 // OpenCV -> OpenGL view axes (x right, y up, z back)
    frag_color = vec4(n * 0.5 + 0.5, 1.0);
}
