#version 330 core
// Puts the offscreen mesh layer on screen: opaque over a background (geometry view), or blended
// with u_opacity over what is already there (overlay). Texels the mesh did not cover have alpha 0.
in vec2 v_uv;
uniform sampler2D u_tex;
uniform float u_opacity;
out vec4 frag_color;
void main() {
    vec4 t = texture(u_tex, v_uv);
    frag_color = vec4(t.rgb, t.a * u_opacity);
}
